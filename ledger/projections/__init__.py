"""Read models computed from postings (reports); they never read the store themselves."""
