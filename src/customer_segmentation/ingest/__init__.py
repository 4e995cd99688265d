"""Bronze: landing files, read through a source profile, into bronze tables exactly once."""
