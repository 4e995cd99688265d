"""The registered lifetime-value model, as MLflow "models from code": this file and `btyd.py`
(shipped beside it) are the model; the fitted parameters and settings are its model_config.

`predict` takes x, t_x and T (weeks) and m_x (mean repeat spend) per customer and gives the
columns of gold.customer_lifetime_value, with the very code the `lifetime_value` task scores with.
"""

import mlflow
import pandas as pd

try:
    from customer_segmentation.models import btyd
except ImportError:  # loaded as model code, with btyd.py beside it (code_paths)
    import btyd


class LifetimeValueModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.config = context.model_config

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return btyd.score(model_input, self.config)


mlflow.models.set_model(LifetimeValueModel())
