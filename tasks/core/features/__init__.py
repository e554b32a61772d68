"""What a model may know about a date: the CTA service calendar (day types, holidays), the
calendar flags derived from it (known in advance for any future date), and the direct
multi-horizon feature matrices built from a series up to its cutoff.
"""
