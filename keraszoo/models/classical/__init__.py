"""Classical baselines behind the same contract as the deep models. Importing this package registers them."""
from keraszoo.models.classical import em, iterative, knn, select, simple, softimpute  # noqa: F401
