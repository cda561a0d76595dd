"""Coarse-to-fine feature selection: a measurement's error / worst value only with its mean.

    .venv/bin/python examples/hierarchical_features.py
"""

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from prunekit.apps.hierarchy import alpha_max, breast_cancer_hierarchy, selection_path

data = load_breast_cancer()
hierarchy = breast_cancer_hierarchy(list(data.feature_names))
x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3,
                                          random_state=0, stratify=data.target)
scaler = StandardScaler().fit(x_tr)
x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
alphas = 3 * alpha_max(x_tr, y_tr) * np.geomspace(1, 0.01, 8)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for method in ("tree", "l1"):
        print(f"--- {method}")
        for row in selection_path(method, hierarchy, x_tr, y_tr, x_te, y_te, alphas):
            names = [hierarchy.names[i] for i in row["support"]][:4]
            print(f"{row['n_features']:3d} features  acc {row['accuracy']:.3f}  "
                  f"tree-consistent {row['consistent']!s:5}  {names}...")
