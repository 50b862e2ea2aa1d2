"""`decaenv patch`: rewrite the known breakages in a user's DECA checkout, with diff, backups and revert.

`rules.RULES` lists the rewrites; `engine.patch_checkout` / `engine.revert_checkout` apply and undo them.
"""

from decaenv.patches.rewrite.engine import FileReport, Outcome, patch_checkout, revert_checkout
from decaenv.patches.rewrite.rules import RULES, Rule

__all__ = ["FileReport", "Outcome", "patch_checkout", "revert_checkout", "RULES", "Rule"]
