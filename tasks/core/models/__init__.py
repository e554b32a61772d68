"""Forecasting models, one module per family, all behind the :class:`~.forecaster.Forecaster`
protocol: the seasonal naive, SARIMA and SARIMAX (statsmodels), direct ridge regression, the
ensemble that combines stored member forecasts, and the Keras RNN family (``rnn/``). ``catalog``
maps a ``model`` name to its family; ``fallback`` and ``champions`` are the rules for what
stands in when a model fails and which trained network a cutoff may use.
"""
