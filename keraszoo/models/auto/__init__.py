"""`auto`: per-column stacking over a pool of the zoo's imputers. Importing this package registers it."""
from keraszoo.models.auto.auto import DEFAULT_POOL, AutoImputer  # noqa: F401
