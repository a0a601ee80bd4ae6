"""Regenerates docs/ARCHITECTURE.md's tables and the diagrams in docs/figures.

Usage:
    python tools/make_docs.py            # rewrite what changed
    python tools/make_docs.py --check    # exit 1 if a table is stale

Tables sit between ``<!-- describe FLAGS -->`` and ``<!-- end describe -->``
lines and are what ``python tools/describe.py FLAGS --format=markdown``
prints. The Fig. 6 / Fig. 7 figures come from tools/compare.py instead (they
need training runs).
"""

import os

from absl import flags

from keras_resnet_cifar.cli import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("doc", os.path.join(ROOT, "docs", "ARCHITECTURE.md"), "Markdown file with generated tables.")
flags.DEFINE_string("figures", os.path.join(ROOT, "docs", "figures"), "Folder for the diagrams.")
flags.DEFINE_integer("n", 3, "Blocks per stage of the network the diagrams show.", lower_bound=1)
flags.DEFINE_bool("check", False, "Only check that the tables are current; write nothing.")
FLAGS = flags.FLAGS


def main(argv):
    app.reject_extra_args(argv)
    from keras_resnet_cifar import files
    from keras_resnet_cifar.study import describe, diagrams

    with open(FLAGS.doc) as f:
        text = f.read()
    new, changed = describe.refresh_markdown(text)
    if FLAGS.check:
        if changed:
            print(f"stale tables in {FLAGS.doc}: {'; '.join(changed)} (run python tools/make_docs.py)")
            return 1
        print(f"{FLAGS.doc}: tables current")
        return 0
    if changed:
        files.write_text(FLAGS.doc, new)
    print(f"{FLAGS.doc}: {len(changed)} table(s) rewritten")
    for name, path in diagrams.draw_all(FLAGS.n, FLAGS.figures).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
