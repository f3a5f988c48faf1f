# Solutions of notebook 05 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 05.1
def make_labels(pieces):
    labels = [-100] if tokenizer.bos_token_id is not None else []  # <bos> belongs to the input
    for _role, piece_text, supervised_piece in pieces:
        piece_ids = tokenizer(piece_text, add_special_tokens=False)["input_ids"]
        labels += piece_ids if supervised_piece else [-100] * len(piece_ids)
    return labels

# %% solution 05.2
my_prediction = {"random_init": math.log(len(tokenizer)), "pretrained": "lower"}

# %% solution 05.3
hours = 6 * 7e9 * 940e6 * 3 / (8 * 312e12 * mfu_7b) / 3600
my_cost = {"hours": hours, "cost_cny": 34.742 * 8 * hours}
