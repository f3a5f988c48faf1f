"""Build-time generators (not imported at run time): the sandbox web corpus, the query bank and the general set.

``python -m labkit.build.worldgen`` writes ``data/world/corpus.jsonl``; ``python -m labkit.build.querygen`` writes
``data/queries/agent_queries.jsonl`` and ``data/queries/general.jsonl`` (with :mod:`labkit.build.general`). Both are
deterministic; ``tests/test_querybank.py`` fails when the committed files are stale.
"""
