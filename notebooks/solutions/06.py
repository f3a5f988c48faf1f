# Solutions of notebook 06 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 06.1
def overall(row):
    weights = {"Planning": 0.25, "Tool-use": 0.35, "Reflection": 0.10, "Concluding": 0.20, "Profile": 0.10}
    return sum(w * row[ability] for ability, w in weights.items())

# %% solution 06.2
general_loss = {label: r["general_heldout"]["loss"] for label, r in mix_results["results"].items()}
my_reading = {"forgets_more": "agent only" if general_loss["agent only"] > general_loss["agent : general = 5 : 1"]
              else "mix",
              "general_loss_change_agent_only": general_loss["agent only"] - general_loss["base (no training)"]}

# %% solution 06.3
usable_a = [s >= 4 for s in SCORES_A]
usable_b = [s >= 4 for s in SCORES_B]
p_o = sum(x == y for x, y in zip(usable_a, usable_b)) / len(usable_a)
p_e = sum((usable_a.count(c) / len(usable_a)) * (usable_b.count(c) / len(usable_b)) for c in (True, False))
my_human = {"usable_rate_a": sum(usable_a) / len(usable_a), "kappa_usable": (p_o - p_e) / (1 - p_e)}
