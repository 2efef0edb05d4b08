"""Reference models for the quality bench: a one-hot linear model (logistic regression for binary
tasks, ridge regression for regression tasks) and gradient-boosted trees (scikit-learn) on the same
train/test CSV files and dataset spec the trainer reads.

    /usr/bin/python3 test/tools/baselines.py --train T.csv --test V.csv --spec spec.json

Prints JSON: {"logistic": {task: auc}, "gbdt": {task: auc}, "mse": {"logistic": {task: mse},
"gbdt": {task: mse}}, "seconds": {...}, "predictions": {"logistic": {task: [p, ...]}, "gbdt": ...}};
predictions are each binary task's probabilities on every test row, in the file's order (what
the bench pairs with a network's scores for a bootstrap interval of the AUC difference). A regression task's MSE is on the scale the trainer
reports it: after the task's transform (log1p), over the rows that have a label. The linear model's
row keeps the name "logistic" for both kinds. Needs python3-sklearn (Debian) - a benchmark tool,
not part of the test suite.
"""
import argparse
import csv
import json
import math
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def read(path, spec):
    missing = set(spec.get("missing", ["", "?", "NA"]))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=spec.get("delimiter", ",")))
    numeric = [x["name"] for x in spec["features"] if x["type"] == "numeric"]
    categorical = [x["name"] for x in spec["features"] if x["type"] == "categorical"]
    num = np.array(
        [[float(r[c].strip()) if r[c].strip() not in missing else math.nan for c in numeric] for r in rows],
        dtype=np.float64,
    ).reshape(len(rows), len(numeric))
    cat = np.array([[r[c].strip() for c in categorical] for r in rows], dtype=object).reshape(len(rows), len(categorical))
    tokens = {
        x["name"]: [[v for v in r[x["name"]].strip().split(x.get("separator", "|")) if v] for r in rows]
        for x in spec["features"]
        if x["type"] == "multi_categorical"
    }
    labels = {}
    for t in spec["tasks"]:
        if t["type"] == "regression":
            y = np.array([float(v) if (v := r[t["column"]].strip()) not in missing else math.nan for r in rows])
            labels[t["name"]] = np.log1p(y) if t.get("transform") == "log1p" else y
        else:
            positive = set(t.get("positive", ["1", "true"]))
            labels[t["name"]] = np.array([1 if r[t["column"]].strip() in positive else 0 for r in rows])
    return num, cat, tokens, labels


def is_regression(spec, task):
    return next(t for t in spec["tasks"] if t["name"] == task)["type"] == "regression"


def indicators(train_tokens, test_tokens, min_count=2):
    """A multi-valued column as one 0/1 column per value seen at least min_count times in training
    (the multi-hot encoding both baselines take as numbers)."""
    counts = {}
    for values in train_tokens:
        for v in set(values):
            counts[v] = counts.get(v, 0) + 1
    vocab = {v: i for i, v in enumerate(sorted(v for v, c in counts.items() if c >= min_count))}

    def encode(lists):
        out = np.zeros((len(lists), len(vocab)))
        for i, values in enumerate(lists):
            for v in values:
                if v in vocab:
                    out[i, vocab[v]] = 1.0
        return out

    return encode(train_tokens), encode(test_tokens)


def target_encode(train_codes, y, test_codes, folds=5, smoothing=20):
    """Mean label per code, shrunk towards the overall rate: out of fold for the training rows
    (a row's own label never encodes it), from all training rows for the test rows."""
    prior = y.mean()
    train_codes = np.nan_to_num(train_codes, nan=-1.0)
    test_codes = np.nan_to_num(test_codes, nan=-1.0)

    def encode(fit_codes, fit_y, codes):
        values, inverse = np.unique(fit_codes, return_inverse=True)
        means = (np.bincount(inverse, weights=fit_y) + smoothing * prior) / (np.bincount(inverse) + smoothing)
        at = np.clip(np.searchsorted(values, codes), 0, len(values) - 1)
        return np.where(values[at] == codes, means[at], prior)

    encoded = np.empty(len(train_codes))
    for part in np.array_split(np.random.RandomState(0).permutation(len(train_codes)), folds):
        rest = np.ones(len(train_codes), dtype=bool)
        rest[part] = False
        encoded[part] = encode(train_codes[rest], y[rest], train_codes[part])
    return encoded, encode(train_codes, y, test_codes)


def probabilities(p):
    """Probabilities as JSON numbers: 7 significant digits (float32's), a list per task."""
    return [float(f"{v:.7g}") for v in p]


def read_pair():
    """--train, --test, --spec and --seed from the command line: the spec, each file as read(),
    and the seed (default 0) of the trees' validation split and subsampling."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = json.load(open(args.spec))
    return spec, read(args.train, spec), read(args.test, spec), args.seed


def main():
    spec, (tn, tc, tt, ty), (vn, vc, vt, vy), seed = read_pair()
    for name in tt:
        ti, vi = indicators(tt[name], vt[name])
        tn, vn = np.concatenate([tn, ti], axis=1), np.concatenate([vn, vi], axis=1)
    nn = tn.shape[1]
    train_x = np.concatenate([tn, tc], axis=1)
    test_x = np.concatenate([vn, vc], axis=1)
    num_cols = list(range(nn))
    cat_cols = list(range(nn, train_x.shape[1]))
    medians = np.nanmedian(tn, axis=0) if nn else []
    for x in (train_x, test_x):
        for j in num_cols:
            col = x[:, j].astype(np.float64)
            col[np.isnan(col)] = medians[j]
            x[:, j] = col

    out = {"logistic": {}, "gbdt": {}, "mse": {"logistic": {}, "gbdt": {}}, "seconds": {},
           "predictions": {"logistic": {}, "gbdt": {}}}
    # A regression task fits and scores on its labelled rows only.
    fit_rows = {task: ~np.isnan(y.astype(np.float64)) for task, y in ty.items()}
    test_rows = {task: ~np.isnan(y.astype(np.float64)) for task, y in vy.items()}
    started = time.time()
    for task, y in ty.items():
        regression = is_regression(spec, task)
        lr = make_pipeline(
            ColumnTransformer(
                [
                    ("num", StandardScaler(), num_cols),
                    ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=2), cat_cols),
                ]
            ),
            Ridge(alpha=1.0) if regression else LogisticRegression(max_iter=2000, C=1.0),
        )
        fit, score = fit_rows[task], test_rows[task]
        lr.fit(train_x[fit], y[fit])
        if regression:
            out["mse"]["logistic"][task] = mean_squared_error(vy[task][score], lr.predict(test_x[score]))
        else:
            p = lr.predict_proba(test_x)[:, 1]
            out["logistic"][task] = roc_auc_score(vy[task], p)
            out["predictions"]["logistic"][task] = probabilities(p)
    out["seconds"]["logistic"] = time.time() - started

    started = time.time()
    ordinal = ColumnTransformer(
        [
            ("num", "passthrough", num_cols),
            ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1), cat_cols),
        ]
    )
    tx = ordinal.fit_transform(train_x).astype(np.float64)
    vx = ordinal.transform(test_x).astype(np.float64)
    # Categories unseen in training (-1) become missing, which the trees route on their own.
    tx[tx < 0] = np.nan
    vx[:, nn:][vx[:, nn:] < 0] = np.nan
    # Categorical splits need < 256 categories; wider columns are target-encoded per task (out of
    # fold on the training file), as a trees user would, instead of splitting on arbitrary codes.
    wide = [j for j in range(nn, tx.shape[1]) if len(np.unique(tx[:, j][~np.isnan(tx[:, j])])) >= 255]
    categorical = [False] * nn + [j not in wide for j in range(nn, tx.shape[1])]
    for task, y in ty.items():
        regression = is_regression(spec, task)
        fit, score = fit_rows[task], test_rows[task]
        ttx, tvx, y = tx[fit].copy(), vx[score].copy(), y[fit]
        for j in wide:
            ttx[:, j], tvx[:, j] = target_encode(tx[fit][:, j], y, vx[score][:, j])
        model = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        gb = model(
            max_iter=500, learning_rate=0.1, early_stopping=True, validation_fraction=0.1,
            n_iter_no_change=20, categorical_features=categorical, random_state=seed,
        )
        gb.fit(ttx, y)
        if regression:
            out["mse"]["gbdt"][task] = mean_squared_error(vy[task][score], gb.predict(tvx))
        else:
            p = gb.predict_proba(tvx)[:, 1]
            out["gbdt"][task] = roc_auc_score(vy[task], p)
            out["predictions"]["gbdt"][task] = probabilities(p)
    out["seconds"]["gbdt"] = time.time() - started
    print(json.dumps(out))


if __name__ == "__main__":
    main()
