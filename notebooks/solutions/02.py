# Solutions of notebook 02 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 02.1
euros = trace_teacher.steps[0].observation.split("= ")[1].split(" EUR")[0]  # "955.84" from the memory
my_task = json.dumps({"task_name": "计算花费后剩余的欧元", "command": {"name": "calculator",
                      "args": {"expression": f"{euros} - 510"}}}, ensure_ascii=False)

# %% solution 02.2
def should_stop(call, done, max_steps):
    if call["name"] == "task_complete":
        return "finished"
    if call in done:  # dicts compare by content, whatever the key order
        return "repeated_call"
    if len(done) >= max_steps:
        return "max_steps"
    return None
