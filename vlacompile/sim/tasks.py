"""The task suite: five families of table-top tasks, each a scene sampler, an instruction, a success
predicate and a step limit.

Scenes hold 2 to 4 objects with random kinds, colours and positions. At least one distractor shares
a colour or a kind with the target (a blue block beside the red block, a red apple beside the red
block), so a policy has to read both the image and the words.

Seeds. An episode is (family, seed); its scene comes from numpy's generator seeded with both. The
seed ranges of SPLITS are disjoint: demonstrations (training) come only from "train", the shipped
calibration set only from "calibration", and every success rate from "eval".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .world import FIXED_COLOUR, Gripper, Obj, World, radius

FAMILIES = ("pick", "put", "push", "near", "stack")
SPLITS = {"train": range(0, 100_000), "calibration": range(100_000, 101_000), "eval": range(200_000, 300_000)}

COLOURED = {"block": ("red", "blue", "green", "yellow"), "cube": ("red", "blue", "green", "yellow"),
            "cup": ("white", "teal", "red", "blue"), "bowl": ("cream", "blue", "teal"), "plate": ("white", "cream")}
GRASPABLE = ("block", "cube", "can", "apple", "orange", "sponge", "carrot", "cup")
STACKABLE = ("block", "cube")
RECEPTACLES = {"bowl": "put the {x} into the {y}", "plate": "place the {x} on the {y}"}
AREA = {"u": (-0.55, 0.55), "v": (0.3, 0.8)}
STEP_LIMIT = {"pick": 40, "put": 80, "push": 60, "near": 80, "stack": 80}
PUSH_DISTANCE = 0.25  # table units the target must move in the named direction
NEAR_GAP = 0.10  # "near": at most this much table between the two footprints
LIFT = 0.12  # "pick up": its bottom this high above the table


@dataclass(frozen=True)
class Task:
    family: str
    seed: int
    instruction: str
    target: int  # index of the object the instruction names first
    other: int | None = None  # the receptacle, or the object to stack on or move near
    direction: int = 0  # push: -1 left, +1 right (the image's left and right)
    start_u: float = 0.0  # the target's start, for push

    @property
    def step_limit(self) -> int:
        return STEP_LIMIT[self.family]

    def success(self, world: World) -> bool:
        x = world.objects[self.target]
        if self.family == "pick":
            return x.held and x.z >= LIFT
        if self.family in ("put", "stack"):
            return not x.held and world.support_of(self.target) == self.other
        if self.family == "push":
            return not x.lifted and x.z == 0.0 and (x.u - self.start_u) * self.direction >= PUSH_DISTANCE
        y = world.objects[self.other]  # near
        gap = x.distance(y.u, y.v) - x.radius - y.radius
        return not x.held and x.z == 0.0 and gap <= NEAR_GAP


def check_family(name: str) -> str:
    if name not in FAMILIES:
        raise UserError(f"unknown task family {name!r}; choose from {', '.join(FAMILIES)}")
    return name


def _colour(rng, kind: str) -> str:
    return FIXED_COLOUR.get(kind) or str(rng.choice(COLOURED[kind]))


def _new_object(rng, kinds, taken: set[str]) -> Obj:
    for _ in range(100):
        kind = str(rng.choice(kinds))
        o = Obj(kind, _colour(rng, kind), 0.0, 0.0)
        if o.name not in taken:
            return o
    raise RuntimeError("no unused object name")  # cannot happen with these catalogues


def _catalogue() -> list[Obj]:
    kinds = GRASPABLE + tuple(RECEPTACLES)
    return [Obj(k, c, 0.0, 0.0) for k in kinds for c in (COLOURED.get(k) or (FIXED_COLOUR[k],))]


def _distractor(rng, target: Obj, taken: set[str]) -> Obj | None:
    """An object sharing the target's kind (another colour) or its colour (another kind), each half
    the time when both exist; None when the scene has used up every such object."""
    free = [o for o in _catalogue() if o.name not in taken]
    same_kind = [o for o in free if o.kind == target.kind]
    same_colour = [o for o in free if o.colour == target.colour and o.kind != target.kind]
    pools = [p for p in (same_kind, same_colour) if p]
    if not pools:
        return None
    pool = pools[int(rng.integers(len(pools)))]
    return pool[int(rng.integers(len(pool)))]


def _place(rng, objects: list[Obj], push: int = 0) -> bool:
    """Random non-overlapping positions, in turn; `push` keeps room beside object 0 in that direction."""
    for k, o in enumerate(objects):
        for _ in range(200):
            o.u, o.v = float(rng.uniform(*AREA["u"])), float(rng.uniform(*AREA["v"]))
            room = k > 0 or not push or AREA["u"][0] <= o.u + push * (PUSH_DISTANCE + 0.1) <= AREA["u"][1]
            if room and all(o.distance(p.u, p.v) > o.radius + p.radius + 0.08 for p in objects[:k]):
                break
        else:
            return False
    return True


def _scene(family: str, rng) -> tuple[list[Obj], int | None, int] | None:
    """Objects (target first), the index of the other named object, and a push direction; None when
    no confusable distractor is left for this draw."""
    taken: set[str] = set()

    def add(o: Obj) -> Obj:
        taken.add(o.name)
        return o

    kinds = STACKABLE if family == "stack" else GRASPABLE
    target = add(_new_object(rng, kinds, taken))
    objects, other, direction = [target], None, 0
    if family in ("put", "stack", "near"):
        if family == "put":
            kind = str(rng.choice(list(RECEPTACLES)))
            ref = add(Obj(kind, _colour(rng, kind), 0.0, 0.0))
        else:
            ref = add(_new_object(rng, STACKABLE if family == "stack" else GRASPABLE + ("bowl", "plate"), taken))
        objects.append(ref)
        other = 1
    if family == "push":
        direction = int(rng.choice([-1, 1]))
    distractor = _distractor(rng, target, taken)
    if distractor is None:
        return None
    objects.append(add(distractor))
    for _ in range(int(rng.integers(0, 4 - len(objects) + 1))):
        objects.append(add(_new_object(rng, GRASPABLE + ("bowl", "plate"), taken)))
    return objects, other, direction


def _instruction(family: str, objects: list[Obj], other: int | None, direction: int, rng) -> str:
    x = objects[0].name
    if family == "pick":
        return f"{rng.choice(['pick up', 'lift'])} the {x}"
    if family == "put":
        return RECEPTACLES[objects[other].kind].format(x=x, y=objects[other].name)
    if family == "push":
        return f"push the {x} to the {'left' if direction < 0 else 'right'}"
    if family == "near":
        return f"move the {x} near the {objects[other].name}"
    return f"stack the {x} on the {objects[other].name}"


def make_episode(family: str, seed: int) -> tuple[World, Task]:
    """The start state and the task of episode (family, seed)."""
    check_family(family)
    rng = np.random.default_rng([FAMILIES.index(family), seed])
    while True:
        scene = _scene(family, rng)
        if scene is None:
            continue
        objects, other, direction = scene
        if _place(rng, objects, direction) and (family != "near" or _far_apart(objects[0], objects[other])):
            break
    instruction = _instruction(family, objects, other, direction, rng)
    order = [int(i) for i in rng.permutation(len(objects))]  # the target is not always drawn first
    new = {old: k for k, old in enumerate(order)}
    gripper = Gripper(float(rng.uniform(-0.4, 0.4)), float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.25, 0.4)))
    task = Task(family, seed, instruction, new[0], None if other is None else new[other], direction, objects[0].u)
    return World([objects[i] for i in order], gripper), task


def _far_apart(x: Obj, y: Obj) -> bool:
    """"near" starts from a pair that is clearly not near yet."""
    return x.distance(y.u, y.v) - x.radius - y.radius > NEAR_GAP + 0.2


def episode_seeds(split: str, n: int, start: int = 0) -> list[tuple[str, int]]:
    """n episodes of a split, the families in turn: (family, seed)."""
    if split not in SPLITS:
        raise UserError(f"unknown seed split {split!r}; choose from {', '.join(SPLITS)}")
    seeds = SPLITS[split]
    if n < 1 or start < 0 or start + n > len(seeds):
        raise UserError(f"{n} episodes from {start} do not fit the {split} seeds (0 to {len(seeds) - 1}); "
                        "ask for at least one episode within the range")
    return [(FAMILIES[i % len(FAMILIES)], seeds[start + i]) for i in range(n)]


__all__ = ["FAMILIES", "SPLITS", "Task", "check_family", "episode_seeds", "make_episode", "radius"]
