"""The scripted expert: the next action from the world state and the task alone (no memory), so
its plan from any state, noisy or not, is one function away, which is what labels demonstrations.

Every family is a few waypoints, reached with a proportional step clipped to SPEED per axis:
- grasp X: hover HOVER above X's top, descend to half its height, close;
- carry: rise to CARRY, travel above the place point, descend until X's bottom is RELEASE_GAP
  above what it will rest on, open;
- push: hover above the point just behind X (seen from the push direction), close in the air,
  descend to PUSH_Z, then move along the direction, keeping X's v;
- a failed grasp (closed on nothing) or the wrong object in hand: open, rise and start over.
The gripper keeps yaw 0 (no task here needs a turn); roll and pitch are always 0.
"""

from __future__ import annotations

import math

import numpy as np

from .tasks import Task
from .world import FINGER, World

SPEED = 0.05  # per axis and step, table units
BAND = 0.036  # horizontal error within which a descent goes on (correcting as it goes)
ALIGN = 0.015  # horizontal error within which the gripper acts
AT = 0.01  # vertical error within which the gripper acts
HOVER = 0.08
CARRY = 0.36
PUSH_Z = 0.04
RELEASE_GAP = 0.02
OPEN, CLOSE = 1.0, 0.0


def _toward(world: World, u: float, v: float, z: float, grip: float) -> np.ndarray:
    g = world.gripper
    du, dv, dz = (float(np.clip(d, -SPEED, SPEED)) for d in (u - g.u, v - g.v, z - g.z))
    return np.array([dv, du, dz, 0.0, 0.0, float(np.clip(-g.yaw, -0.1, 0.1)), grip])  # base frame: x = v, y = u


def _off(world: World, u: float, v: float) -> float:
    return math.hypot(world.gripper.u - u, world.gripper.v - v)


def _descend(world: World, u: float, v: float, z: float, high: float, grip: float, act: float) -> np.ndarray:
    """Travel at `high` to above (u, v), descend to z correcting on the way, then set the gripper to `act`."""
    g, off = world.gripper, _off(world, u, v)
    if off > BAND:
        return _toward(world, u, v, high, grip)
    if abs(g.z - z) > AT or off > ALIGN:
        return _toward(world, u, v, z, grip)
    return _toward(world, g.u, g.v, g.z, act)


def _grasp(world: World, i: int) -> np.ndarray:
    g, o = world.gripper, world.objects[i]
    if g.closed:  # closed on nothing: open where it is
        return _toward(world, g.u, g.v, g.z + SPEED, OPEN)
    high = max(o.z + o.height + HOVER, min(g.z, CARRY))
    return _descend(world, o.u, o.v, o.z + 0.5 * o.height, high, OPEN, CLOSE)


def _carry(world: World, u: float, v: float, rest: float) -> np.ndarray:
    """Holding the target: to above (u, v), then down until its bottom is just above `rest`; open."""
    z = rest + world.gripper.grasp_offset + RELEASE_GAP
    return _descend(world, u, v, z, CARRY, CLOSE, OPEN)


def near_point(world: World, task: Task) -> tuple[float, float]:
    """Where "move X near Y" puts X: beside Y toward the table's middle, turning in 45-degree steps
    until the spot is free; a function of the resting objects only, so the expert stays memoryless."""
    x, y = world.objects[task.target], world.objects[task.other]
    reach = x.radius + y.radius + 0.05
    base = math.atan2(0.55 - y.v, 0.0 - y.u)
    for k in (0, 1, -1, 2, -2, 3, -3, 4):
        a = base + k * math.pi / 4
        u, v = y.u + reach * math.cos(a), y.v + reach * math.sin(a)
        others = [o for j, o in enumerate(world.objects) if j not in (task.target, task.other)]
        if -0.7 <= u <= 0.7 and 0.15 <= v <= 0.95 and all(o.distance(u, v) > o.radius + x.radius + 0.02 for o in others):
            return u, v
    return y.u + reach * math.cos(base), y.v + reach * math.sin(base)


def _push(world: World, task: Task) -> np.ndarray:
    g, x, d = world.gripper, world.objects[task.target], task.direction
    behind = x.u - d * (x.radius + FINGER + 0.03)
    hover = x.height + HOVER
    in_line = abs(g.v - x.v) <= BAND and (x.u - g.u) * d > 0 and abs(g.u - behind) <= BAND
    if g.closed and in_line:
        if g.z <= PUSH_Z + AT:
            return _toward(world, g.u + d * SPEED, x.v, PUSH_Z, CLOSE)
        return _toward(world, behind, x.v, PUSH_Z, CLOSE)
    grip = CLOSE if g.closed else OPEN
    if g.z < hover - AT and not in_line:  # rise first: never sweep the target the wrong way
        return _toward(world, g.u, g.v, hover, grip)
    if _off(world, behind, x.v) > ALIGN:
        return _toward(world, behind, x.v, max(g.z, hover), grip)
    return _toward(world, g.u, g.v, g.z, CLOSE)  # above the spot behind it, in the air: close


def expert_action(world: World, task: Task) -> np.ndarray:
    """The next 7-dof action (base frame, gripper absolute: 1 open, 0 closed)."""
    if task.family == "push":
        return _push(world, task)
    held, g = world.held(), world.gripper
    if held is not None and held != task.target:  # the wrong object: put it down where it is
        return _toward(world, g.u, g.v, g.z, OPEN)
    if held is None:
        return _grasp(world, task.target)
    if task.family == "pick":
        return _toward(world, g.u, g.v, CARRY, CLOSE)
    if task.family == "near":
        u, v = near_point(world, task)
        return _carry(world, u, v, 0.0)
    y = world.objects[task.other]  # put, stack
    return _carry(world, y.u, y.v, y.surface)


def plan(world: World, task: Task, steps: int) -> np.ndarray:
    """The expert's next `steps` actions from this state, as it would execute them: [steps, 7].
    After success the plan holds still (zero motion, the last gripper command)."""
    sim, out = world.clone(), []
    for _ in range(steps):
        a = expert_action(sim, task) if not task.success(sim) else np.array([0, 0, 0, 0, 0, 0, out[-1][6] if out else OPEN])
        out.append(a)
        sim.step(a)
    return np.stack(out).astype(np.float32)
