# Solutions of notebook 04 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 04.1
my_dropped = {"quiz_b", "quiz_d"}  # quiz_b lacks a part; quiz_d's tool and args share one label (no round trip)

# %% solution 04.2
def keep(s2, s1, eps):
    return s2 - s1 > eps  # strictly greater, candidate minus benchmark

# %% solution 04.3
means = inst.groupby("template")["s2"].mean()  # every instance of the template, not only the kept ones
my_kept = set(means[means > threshold].index)
