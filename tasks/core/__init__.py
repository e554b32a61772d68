"""The pure core: forecasting, features, data cleaning and evaluation as plain typed functions.

Nothing here imports Prefect or ``storage`` or touches a file: the Prefect tasks in ``tasks/``
load through ``storage``, call these functions, and write the results back. The subpackages are
cut by responsibility: ``data`` (raw files to clean series), ``features`` (what a model may know
about a date), ``models`` (one module per model family behind one protocol), ``evaluation``
(scores, leaderboards, the report); ``walk_forward`` is the engine that runs any model "as of"
a list of past cutoffs.
"""
