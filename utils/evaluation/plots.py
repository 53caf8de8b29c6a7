"""Optional evaluation plots (matplotlib): precision-recall over Hamming radii and precision@N."""
from utils.evaluation.metrics import precision_at_n, precision_recall_curve


def save_retrieval_plots(q_codes, db_codes, q_labels, db_labels, out_dir, bit, ns=None):
    """Write pr_curve_<K>.png and precision_at_n_<K>.png; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    from utils.storage.fileio import atomic_open
    from utils.storage.run_folder import RunFolder

    pr_file, at_n_file = RunFolder(out_dir).plots(bit)
    n_db = len(db_codes)
    ns = ns or sorted({n for n in (1, 10, 50, 100, 200, 500, 1000, 2000, 5000) if n <= n_db} | {n_db})
    curve = precision_recall_curve(q_codes, db_codes, q_labels, db_labels)
    at_n = precision_at_n(q_codes, db_codes, q_labels, db_labels, ns=tuple(ns))
    paths = []
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve["recall"], curve["precision"], marker="o", markersize=3)
    for r in (0, 2, bit // 4):
        if r < len(curve["radius"]):
            ax.annotate(f"r={r}", (curve["recall"][r], curve["precision"][r]), fontsize=8)
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision-recall over Hamming radius ({bit} bits)",
           xlim=(0, 1.02), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    paths.append(pr_file)
    with atomic_open(paths[-1], "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(list(at_n), [at_n[n] for n in at_n], marker="o", markersize=3)
    ax.set(xscale="log", xlabel="N (top-N retrieved)", ylabel="precision", ylim=(0, 1.02),
           title=f"Precision@N ({bit} bits)")
    ax.grid(alpha=0.3)
    paths.append(at_n_file)
    with atomic_open(paths[-1], "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths, curve, at_n
