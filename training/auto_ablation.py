"""How `auto`'s weighting choices change its RMSE and fit cost: rounds x shrinkage, and pruning.

    python -m training.auto_ablation shrinkage breast,wine 3
    python -m training.auto_ablation prune breast,wine 3

Each table is min-max scaled (over the complete data) and 20% of its entries removed at random
(seed s: ``numpy.random.default_rng(s).random(shape) > 0.2`` observed); `auto` (default pool) is fitted
on the rest with each setting and its imputation scored by RMSE over the removed entries. A member fitted on
the same data with the same seed is fitted once and reused by every setting (its fit time counted
each time it is used), so the settings of one seed share their members' fits and the "cost" column
is the sum of member fit times the setting would pay alone. "best single" is the best pool member
fitted on the whole incomplete table. `shrinkage` compares rounds 3/2/1 with cross-validated
shrinkage and without (wine: 1 round only, its default); `prune` compares pruning tolerances
without shrinkage.
"""
import hashlib
import sys
import time

import numpy as np

from keraszoo.data import load_dataset
from keraszoo.models.auto.auto import AutoImputer

SETTINGS = {
    "shrinkage": [dict(rounds=r, shrinkage=s) for r in (3, 2, 1) for s in ("cv", 0.0)],
    "prune": [dict(shrinkage=0.0, prune_tolerance=t) for t in (None, 0.0, 0.002, 0.005, 0.01, 0.02, 0.05)],
}


def main(argv=None):
    mode, tables, seeds = (sys.argv[1:] if argv is None else argv)
    cache, spent, single_rmse = {}, [], {}
    fit_member = AutoImputer._fit_member

    def cached(self, spec, x, mask):
        key = (spec["name"], repr(spec["params"]), self.seed, hashlib.sha1(x.tobytes() + mask.tobytes()).hexdigest())
        if key not in cache:
            start = time.perf_counter()
            member = fit_member(self, spec, x, mask)
            cache[key] = (member, time.perf_counter() - start)
        spent.append((spec["name"], cache[key][1]))
        return cache[key][0]

    AutoImputer._fit_member = cached
    for table in tables.split(","):
        x = load_dataset(table).features.to_numpy(float)
        low, high = x.min(0), x.max(0)
        x = (x - low) / np.where(high > low, high - low, 1)
        for seed in range(int(seeds)):
            mask = (np.random.default_rng(seed).random(x.shape) > 0.2).astype(float)
            shown = np.where(mask == 1, x, 0.0)
            whole = hashlib.sha1(shown.tobytes() + mask.tobytes()).hexdigest()
            settings = SETTINGS[mode] if not (mode == "shrinkage" and table != "breast") else SETTINGS[mode][-2:]
            for setting in settings:
                spent.clear()
                auto = AutoImputer(seed=seed, **setting).fit_arrays(shown, mask)
                rmse = np.sqrt(((auto.impute(shown, mask) - x)[mask == 0] ** 2).mean())
                for key, (member, _) in cache.items():
                    if key[3] == whole and key not in single_rmse:  # each member refitted on the whole table, scored once
                        deep = key[0] == "gain"
                        imputed = member.impute(shown.astype(np.float32), mask.astype(np.float32)) if deep else member.impute(shown, mask)
                        single_rmse[key] = np.sqrt(((np.asarray(imputed, float) - x)[mask == 0] ** 2).mean())
                single = {key[0]: rmse for key, rmse in single_rmse.items() if key[3] == whole}
                best = min(single.items(), key=lambda kv: kv[1]) if single else None
                kept = [auto.labels[m] for m, member in enumerate(auto.members_) if member is not None]
                print(
                    f"{table} seed {seed} {setting}: rmse {rmse:.5f} strength {auto.shrinkage_} rounds {auto.rounds_} "
                    f"cost {sum(t for _, t in spent):.1f}s fits {len(spent)} ran {auto.member_rounds_.tolist()} kept {kept} "
                    f"| best single {best[0] if best else None} {best[1] if best else float('nan'):.5f}",
                    flush=True,
                )
    AutoImputer._fit_member = fit_member


if __name__ == "__main__":
    main()
