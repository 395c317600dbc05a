"""Mixed-type tables, Datawig style: numeric, categorical and text columns of a pandas DataFrame.

    >>> from keraszoo.tabular import SimpleImputer, complete
    >>> imputer = SimpleImputer(["age", "education", "occupation"], "workclass").fit(train_df)
    >>> imputer.predict(test_df, precision_threshold=0.9)        # adds workclass_imputed(_proba)
    >>> complete(df)                                             # fills every column with missing values

See `keraszoo.tabular.imputer` for what differs from awslabs/datawig and why.
"""
from keraszoo.tabular.columns import KINDS, ColumnSpec, infer_kind  # noqa: F401
from keraszoo.tabular.imputer import Completer, SimpleImputer, TableImputer, complete  # noqa: F401
