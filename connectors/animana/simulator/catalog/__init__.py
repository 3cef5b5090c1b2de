"""Static reference data the simulator draws from, one module per domain.

Kept apart from the generator so the generator reads as a story (who comes in, what happens) and these files
as the practice's surroundings (``places``), its patients (``animals``), its price list (``products``) and its
clinical vocabulary (``clinical``). Values are plausible for a Dutch small-animal practice; VeNom-style codes
are illustrative, not the official VeNom list.
"""
