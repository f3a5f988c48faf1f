# Solutions of notebook 01 (docs/EXERCISES.md): each section replaces the placeholder of its exercise.

# %% solution 01.1
my_labels = ["实时", "幻觉", "多步", "实时", "多步", "幻觉"]

# %% solution 01.2
my_step = ("Thought: 字节跳动的总部在北京，接下来查询北京现在的天气\n"
           "Action: get_weather_info\n"
           'Action Input: {"location": "北京", "start_date": "2025-03-15", "end_date": "2025-03-15", "is_current": "yes"}')
