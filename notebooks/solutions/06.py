# Solutions of notebook 06 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 06.1
def solve_weights(rows):
    abilities = ["Planning", "Tool-use", "Reflection", "Concluding", "Profile"]
    x = np.array([[row[a] for a in abilities] for row in rows])  # one equation per row:
    y = np.array([row["Overall"] for row in rows])               # Overall = sum of weight x ability
    weights = np.linalg.lstsq(x, y, rcond=None)[0]
    return dict(zip(abilities, weights))

# %% solution 06.2
general = {label: r["general_heldout"]["loss"] for label, r in mix_results["results"].items()}
agent = {label: r["agent_heldout"]["loss"] for label, r in mix_results["results"].items()}
base_loss = general["base (no training)"]
my_reading = {"general_change": {"agent only": general["agent only"] - base_loss,
                                 "mix": general["agent : general = 5 : 1"] - base_loss},
              "forgetting": general["agent only"] > base_loss or general["agent : general = 5 : 1"] > base_loss,
              "agent_cost_of_mix": agent["agent : general = 5 : 1"] - agent["agent only"]}

# %% solution 06.3
usable_a = [s >= 4 for s in SCORES_A]
usable_b = [s >= 4 for s in SCORES_B]
p_o = sum(x == y for x, y in zip(usable_a, usable_b)) / len(usable_a)
p_e = sum((usable_a.count(c) / len(usable_a)) * (usable_b.count(c) / len(usable_b)) for c in (True, False))
my_human = {"usable_rate_a": sum(usable_a) / len(usable_a), "kappa_usable": (p_o - p_e) / (1 - p_e)}
