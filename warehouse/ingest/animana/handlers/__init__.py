"""Bespoke handlers: the Animana resources whose rows a single-table `plan.TableLoad` cannot express, grouped by
domain (`directory`, `clinical`, `billing`). Each module says why its resources need one."""
