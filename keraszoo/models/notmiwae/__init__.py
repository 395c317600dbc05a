"""not-MIWAE (Ipsen, Mattei & Frellsen, ICLR 2021): MIWAE with a model of the missingness, for data missing not at random."""
from keraszoo.models.notmiwae.notmiwae import NotMIWAE  # noqa: F401
