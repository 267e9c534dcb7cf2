"""Engagement: what doctors and reps did (events), what that says about each doctor (profiles), and the rankers
that learn from it. A stage below matching: matching asks it for a doctor's profile and ranking, never the reverse."""
