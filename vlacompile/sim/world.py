"""The table-top world: objects, a parallel-jaw gripper, and what one 7-dof action does to them.

Units are table units: the table top spans u in [-1, 1] (the image's left to right) and v in [0, 1]
(back to front); z is height above the table top. There is no physics engine, only these rules,
applied in this order by `World.step`, so the world is deterministic:

1. Motion. The action is one row of a CogACT chunk in the Fractal / RT-1 convention of the robot
   base frame: the base stands behind the table's far edge facing the camera, so +x moves toward
   the camera (+v), +y to the robot's left, which is the image's right (+u), +z up.
   [dx, dy, dz] are deltas in table units (each clipped to +-MAX_DELTA, the gripper kept inside
   the workspace); dyaw turns the jaws about the vertical; droll and dpitch are ignored (a
   top-down gripper has nothing to roll or pitch here). The gripper entry is absolute: >= 0.5
   opens, < 0.5 closes.
2. Pushing. A closed gripper that holds nothing and moves horizontally at the height of an object
   it touches (finger tips within the object's footprint plus FINGER, between its bottom and top,
   moving toward it) pushes it: the object moves with the gripper, and whatever rests on it too.
   An open gripper pushes nothing.
3. Grasping. Closing (open -> closed) with the finger tips at grasp height (between GRASP_LOW and
   the top of an object's height) and within GRASP_REACH of its centre picks up the nearest such
   object. Opening releases the held object where it is.
4. A held object follows the gripper, keeping the offset it was grasped at, but not down through
   what is under it: its bottom stops at the table top, and at the top of a support under its
   centre that it was not below (the same test as settling). The gripper may go on down (as it may
   below a held object on the table); the object follows it up again. Without this rule a block
   lowered onto another passed through it and fell to the table when released (docs/BENCHMARKS.md,
   "Why stacking fails"), which no real arm does.
5. Settling. Every object that is not held rests on the highest support under its centre
   (a block, cube, bowl or plate whose footprint holds it), else on the table: a released object
   falls straight down, and an object whose support was taken away falls too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from ..data.render import DIMS

MAX_DELTA = 0.1  # per axis and step, table units
WORKSPACE = {"u": (-0.85, 0.85), "v": (0.0, 1.0), "z": (0.0, 0.6)}
FINGER = 0.03  # finger-tip radius: pushing contact
GRASP_LOW = 0.2  # finger tips at least this fraction of an object's height above its bottom
GRIPPER_OPEN = 0.5  # action threshold
SUPPORTS = ("block", "cube", "bowl", "plate")
BOWL_FLOOR = 0.03  # what sits in a bowl rests this high above the bowl's bottom
FIXED_COLOUR = {"apple": "red", "orange": "orange", "can": "red", "sponge": "yellow", "carrot": "orange"}
NAMES = {"can": "coke can"}  # kinds whose name is not "<colour> <kind>"


def radius(kind: str) -> float:
    """Footprint radius: half the drawn width (a carrot lies on its side, so it is longer)."""
    return 0.18 if kind == "carrot" else DIMS[kind][0]


def height(kind: str) -> float:
    return 2 * DIMS[kind][1]


def grasp_reach(kind: str) -> float:
    """How far from an object's centre the finger tips may close and still hold it."""
    return 0.75 * min(radius(kind), 0.11) + 0.03


@dataclass
class Obj:
    kind: str
    colour: str  # a renderer colour; for kinds with one look it is only what the object is called
    u: float
    v: float
    z: float = 0.0  # height of its bottom
    held: bool = False
    lifted: bool = False  # has been grasped during this episode (a push must not lift it)

    @property
    def name(self) -> str:
        if self.kind in FIXED_COLOUR:
            return NAMES.get(self.kind, self.kind)
        return f"{self.colour} {self.kind}"

    @property
    def radius(self) -> float:
        return radius(self.kind)

    @property
    def height(self) -> float:
        return height(self.kind)

    @property
    def surface(self) -> float:
        """Where something resting on it sits."""
        return self.z + (BOWL_FLOOR if self.kind == "bowl" else self.height)

    def distance(self, u: float, v: float) -> float:
        return math.hypot(self.u - u, self.v - v)


@dataclass
class Gripper:
    u: float
    v: float
    z: float
    yaw: float = 0.0
    closed: bool = False
    grasp_offset: float = 0.0  # finger-tip height above the held object's bottom

    @property
    def state(self) -> np.ndarray:
        """Proprioception in the base frame: x (= v), y (= u), z, yaw, and 1 when open."""
        return np.array([self.v, self.u, self.z, self.yaw, 0.0 if self.closed else 1.0], np.float32)


@dataclass
class World:
    objects: list[Obj]
    gripper: Gripper
    steps: int = 0
    log: list = field(default_factory=list)  # events: ("grasp", i), ("release", i), ("push", i)

    def clone(self) -> "World":
        return copy.deepcopy(self)

    def held(self) -> int | None:
        return next((i for i, o in enumerate(self.objects) if o.held), None)

    def support_of(self, i: int) -> int | None:
        """The object that object i rests on, if any."""
        o = self.objects[i]
        if o.held or o.z <= 1e-9:
            return None
        for j, s in enumerate(self.objects):
            if j != i and not s.held and s.kind in SUPPORTS and abs(s.surface - o.z) < 1e-6 \
                    and s.distance(o.u, o.v) <= 0.9 * s.radius:
                return j
        return None

    def step(self, action) -> None:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape[0] != 7 or not np.all(np.isfinite(a)):
            raise ValueError(f"an action is 7 finite numbers (x, y, z, roll, pitch, yaw, gripper), got {a.tolist()}")
        g = self.gripper
        du, dv, dz = (float(np.clip(d, -MAX_DELTA, MAX_DELTA)) for d in (a[1], a[0], a[2]))
        old = (g.u, g.v)
        g.u = float(np.clip(g.u + du, *WORKSPACE["u"]))
        g.v = float(np.clip(g.v + dv, *WORKSPACE["v"]))
        g.z = float(np.clip(g.z + dz, *WORKSPACE["z"]))
        g.yaw = float((g.yaw + a[5] + math.pi) % (2 * math.pi) - math.pi)
        if g.closed and self.held() is None:
            self._push(old)
        closing = a[6] < GRIPPER_OPEN
        if closing and not g.closed:
            self._grasp()
        elif not closing and g.closed:
            self._release()
        g.closed = closing
        self._follow()
        self._settle()
        self.steps += 1

    def _push(self, old: tuple[float, float]) -> None:
        g = self.gripper
        d = np.array([g.u - old[0], g.v - old[1]])
        if not d.any():
            return
        for i, o in enumerate(self.objects):
            toward = np.dot(d, [o.u - old[0], o.v - old[1]]) > 0
            if toward and o.z <= g.z <= o.z + o.height and o.distance(g.u, g.v) < o.radius + FINGER:
                for j in [i, *self._resting_on(i)]:
                    self.objects[j].u += float(d[0])
                    self.objects[j].v += float(d[1])
                self.log.append(("push", i))

    def _resting_on(self, i: int) -> list[int]:
        """Objects stacked on object i, directly or through others."""
        out = [j for j in range(len(self.objects)) if self.support_of(j) == i]
        return out + [k for j in out for k in self._resting_on(j)]

    def _grasp(self) -> None:
        g = self.gripper
        reachable = [(o.distance(g.u, g.v), i) for i, o in enumerate(self.objects)
                     if o.distance(g.u, g.v) <= grasp_reach(o.kind)
                     and o.z + GRASP_LOW * o.height <= g.z <= o.z + o.height]
        if reachable:
            i = min(reachable)[1]
            self.objects[i].held = self.objects[i].lifted = True
            g.grasp_offset = g.z - self.objects[i].z
            self.log.append(("grasp", i))

    def _release(self) -> None:
        i = self.held()
        if i is not None:
            self.objects[i].held = False
            self.log.append(("release", i))

    def _follow(self) -> None:
        i, g = self.held(), self.gripper
        if i is not None:
            o = self.objects[i]
            was = o.z
            o.u, o.v = g.u, g.v
            o.z = max(g.z - g.grasp_offset, self._floor(i, was))

    def _floor(self, i: int, was: float) -> float:
        """How low held object i may go: the highest support under its centre whose top it was not
        below (`was`: its height before this step), else the table."""
        others = [j for j, s in enumerate(self.objects) if j != i and not s.held]
        return max(self._tops_under(self.objects[i], was, others), default=0.0)

    def _tops_under(self, o: Obj, level: float, among: list[int]) -> list[float]:
        """The surfaces of the supports among `among` under o's centre (within 0.9 of their radius)
        that are not above `level`: what o can rest on, coming down from there."""
        return [s.surface for s in (self.objects[j] for j in among)
                if s.kind in SUPPORTS and s.distance(o.u, o.v) <= 0.9 * s.radius and s.surface <= level + 1e-6]

    def _settle(self) -> None:
        """Lowest first, so a support has its final height before what rests on it looks at it."""
        order = sorted((i for i, o in enumerate(self.objects) if not o.held), key=lambda i: self.objects[i].z)
        settled: list[int] = []
        for i in order:
            o = self.objects[i]
            o.z = max(self._tops_under(o, o.z, settled), default=0.0)
            settled.append(i)
