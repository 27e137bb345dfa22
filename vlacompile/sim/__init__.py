"""A closed-loop table-top benchmark: the offline stand-in for SIMPLER that the product measures
success rates on.

    world.py    objects, the gripper, and the contact rules of one action step
    camera.py   the 224x224 camera image of a world (the calib_data renderer)
    tasks.py    five task families, their seeds, instructions and success predicates
    expert.py   the scripted expert that demonstrates them
    env.py      an episode: reset, step, observe
    demos.py    demonstrations (perturbed expert episodes, the expert's plans as labels) and statistics
    oracle.py   the action head on the true task state: what perfect perception would solve
    probe.py    a linear probe of the cognition feature on new scenes: what perception generalizes
    eval_workers.py  a policy's evaluation spread over worker processes (vlacompile/workers.py's pools)
"""
