"""Meta-Agent (course note §4.2): query clusters -> generated templates -> section check -> pairwise judge -> kept."""
