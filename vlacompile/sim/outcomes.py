"""How an episode ended, in words a person can act on: which object the gripper went for, and by how
much a failed grasp missed. The success rate says how often a policy fails; this says where, so
that a failing run points at what to train (finding the object, or the last centimetres).

Each episode gets one outcome, from the first decisive thing that happened (the world's event log
and the gripper's failed closes, which the episode records):
- "success";
- "grasped it, did not finish": the named object was held at some point, but was not lifted or
  placed as asked;
- "grasped another object": the first object held was not the named one;
- push episodes: "pushed it too little" (the named object moved, not far enough or the wrong way),
  "pushed another object", "pushed nothing";
- otherwise, from the first close on nothing: "missed it sideways" (the fingers were nearest the
  named object, but farther from its centre than its grasp reach), "missed it in height" (within
  reach, outside its grasp band), "closed near another object" (nearest another object's centre);
- "never closed".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .world import GRASP_LOW, World, grasp_reach

OUTCOMES = ("success", "grasped it, did not finish", "grasped another object", "missed it sideways",
            "missed it in height", "closed near another object", "pushed it too little", "pushed another object",
            "pushed nothing", "never closed")


@dataclass(frozen=True)
class Miss:
    """Where the fingers were when the gripper closed on nothing, measured from the named object."""
    nearest_is_target: bool  # the named object's centre was the nearest one, horizontally
    reaches: float  # horizontal distance from its centre, in its grasp reaches (at most 1 grasps)
    height: int  # -1 below its grasp band, 0 within it, +1 above it


def miss(world: World, target: int) -> Miss:
    """The gripper has just closed and holds nothing: where it was against object `target`."""
    g, o = world.gripper, world.objects[target]
    nearest = min((x.distance(g.u, g.v), i) for i, x in enumerate(world.objects) if not x.held)[1]
    low, high = o.z + GRASP_LOW * o.height, o.z + o.height
    return Miss(nearest == target, o.distance(g.u, g.v) / grasp_reach(o.kind), -1 if g.z < low else int(g.z > high))


def outcome(family: str, target: int, world: World, misses: list[Miss], succeeded: bool) -> str:
    """One of OUTCOMES (module docstring), for an episode that has ended."""
    if succeeded:
        return "success"
    grasped = [i for event, i in world.log if event == "grasp"]
    if target in grasped:
        return "grasped it, did not finish"
    if grasped:
        return "grasped another object"
    if family == "push":
        pushed = {i for event, i in world.log if event == "push"}
        return "pushed it too little" if target in pushed else "pushed another object" if pushed else "pushed nothing"
    if misses:
        m = misses[0]
        if not m.nearest_is_target:
            return "closed near another object"
        return "missed it sideways" if m.reaches > 1 else "missed it in height"
    return "never closed"


def episode_outcome(ep) -> str:
    """outcome() of a finished env.Episode."""
    return outcome(ep.task.family, ep.task.target, ep.world, ep.misses, ep.succeeded)


def first_miss(ep) -> dict | None:
    """The first close on nothing of a finished env.Episode, as JSON-ready fields (None if none)."""
    return asdict(ep.misses[0]) if ep.misses else None


def tally(outcomes: list[str]) -> dict[str, int]:
    """{outcome: episodes}, in OUTCOMES' order, those that happened only."""
    return {o: outcomes.count(o) for o in OUTCOMES if o in outcomes}
