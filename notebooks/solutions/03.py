# Solutions of notebook 03 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 03.1
chosen = example["trace"]["steps"][1]
my_sample = {"messages": [{"role": "user", "content": chosen["prompt"], "loss": False},
                          {"role": "assistant", "content": chosen["output"], "loss": True}]}

# %% solution 03.2
def gold_mismatch(r):
    calls = [c for c in Trace.from_dict(r["trace"]).calls if c["name"] != "task_complete"]
    return calls != [c for c in by_id[r["query_id"]]["gold_calls"] if c["name"] != "task_complete"]


my_suspects = [r["job_id"] for r, v in zip(records, verdicts) if v.accepted and gold_mismatch(r)]
for job_id in my_suspects:
    record_decision(decisions, job_id, "reject", reviewer="me", note="参数值与金标注不符，过滤规则没有发现")
print(my_suspects)

# %% solution 03.3
my_ratio = 5
n_general = round(len(agent) / my_ratio)
my_mix = {"ratio": my_ratio, "n_general": n_general, "n_repeats": max(0, n_general - len(gen_train)),
          "without_general": "B"}  # a prediction: 06 compares it with two measured trainings
