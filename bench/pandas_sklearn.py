"""Reference: what an analyst would write in one process with pandas and scikit-learn.

Read every CSV, drop lines without a customer and exact duplicates, keep positive prices and
non-zero quantities (cancellations netted by their negative quantities), compute RFM per
customer, log-transform and standardise, and run KMeans over the k range with the three
sklearn.metrics scores (the silhouette on a seeded sample of 10,000 customers, as sklearn's
own `sample_size` allows, because the full one is quadratic in the number of customers).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler


def run(landing: str, k_min: int, k_max: int, seed: int) -> dict:
    timings = {}
    started = time.perf_counter()
    files = sorted(Path(landing).glob("*.csv"))
    lines = pd.concat([pd.read_csv(f, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
                       for f in files], ignore_index=True)
    timings["read"] = time.perf_counter() - started
    started = time.perf_counter()
    lines = lines.dropna(subset=["CustomerID"]).drop_duplicates()
    lines = lines[(lines["Quantity"] != 0) & (lines["UnitPrice"] > 0)]
    lines["InvoiceDate"] = pd.to_datetime(lines["InvoiceDate"])
    lines["amount"] = lines["Quantity"] * lines["UnitPrice"]
    reference = lines["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    purchases = lines[~lines["InvoiceNo"].str.startswith("C")]
    rfm = pd.DataFrame({
        "recency": (reference - lines.groupby("CustomerID")["InvoiceDate"].max()).dt.days,
        "frequency": purchases.groupby("CustomerID")["InvoiceNo"].nunique(),
        "monetary": lines.groupby("CustomerID")["amount"].sum(),
    }).fillna(0)
    timings["clean_and_rfm"] = time.perf_counter() - started
    started = time.perf_counter()
    x = StandardScaler().fit_transform(np.sign(rfm.values) * np.log1p(np.abs(rfm.values)))
    scores = {}
    for k in range(k_min, k_max + 1):
        labels = KMeans(n_clusters=k, random_state=seed, n_init=1).fit_predict(x)
        scores[k] = {
            "silhouette": float(silhouette_score(x, labels, sample_size=min(len(x), 10_000), random_state=seed)),
            "davies_bouldin": float(davies_bouldin_score(x, labels)),
            "calinski_harabasz": float(calinski_harabasz_score(x, labels)),
        }
    timings["kmeans_sweep"] = time.perf_counter() - started
    return {"lines": int(sum(1 for f in files for _ in open(f)) - len(files)), "customers": len(rfm),
            "timings": timings, "scores": scores}


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
