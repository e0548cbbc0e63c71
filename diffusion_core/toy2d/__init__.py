"""The 2-D toys, by job: the data sets (``datasets``), the exact denoiser of an empirical distribution
(``exact``), the MLP noise predictor and its training (``mlp``), flow matching (``flow``: the exact velocity
and a velocity MLP), sampling and measuring (``measure``)."""

from .datasets import (
                       DARK_LEVEL,
                       DATASETS,
                       MAX_POINTS,
                       PICTURE_PATH,
                       BlankPictureError,
                       DatasetName,
                       Distribution2D,
                       bundled_picture,
                       check_n_points,
                       distribution,
                       picture_distribution,
                       picture_from_bytes,
)
from .exact import (
                       eps_from_x0,
                       exact_eps_fn,
                       optimal_eps,
                       optimal_score,
                       optimal_x0,
                       score_from_eps,
)
from .flow import (
                       FlowTrainConfig,
                       FlowTrainResult,
                       VarianceEstimate,
                       VelocityMLP,
                       VelocityMLPConfig,
                       exact_velocity_fn,
                       expected_velocity_variance,
                       mlp_velocity_fn,
                       optimal_velocity,
                       optimal_x0_on_path,
                       train_velocity_mlp,
                       velocity_variance,
)
from .measure import energy_distance, grid, nearest_distance, reverse_paths
from .mlp import (
                       EpsMLP,
                       MLPConfig,
                       Progress,
                       TrainConfig,
                       TrainResult,
                       mlp_eps_fn,
                       one_thread,
                       train_mlp,
)

__all__ = ["BlankPictureError", "DARK_LEVEL", "DATASETS", "DatasetName", "Distribution2D", "EpsMLP", "MAX_POINTS",
           "MLPConfig", "PICTURE_PATH", "Progress", "TrainConfig", "TrainResult", "bundled_picture", "check_n_points",
           "distribution", "energy_distance", "eps_from_x0", "exact_eps_fn", "grid", "mlp_eps_fn", "nearest_distance",
           "one_thread", "optimal_eps", "optimal_score", "optimal_x0", "picture_distribution", "picture_from_bytes",
           "reverse_paths", "score_from_eps", "train_mlp",
           "FlowTrainConfig", "FlowTrainResult", "VarianceEstimate", "VelocityMLP", "VelocityMLPConfig",
           "exact_velocity_fn", "expected_velocity_variance", "mlp_velocity_fn", "optimal_velocity",
           "optimal_x0_on_path", "train_velocity_mlp", "velocity_variance"]
