"""What users deploy today without dagtrigger: the vendors' samples, rewritten to run here."""
