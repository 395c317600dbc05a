"""G2LGN (Wang, Chai & Li): global and local GAN imputers joined by an impute guider."""
from keraszoo.models.g2lgn.g2lgn import G2LGN  # noqa: F401
