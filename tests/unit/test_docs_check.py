"""How `make docs-check` finds the documented commands (the CLIs themselves run in make docs-check)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tools import docs_check
from tools.docs_check import Command

README = """\
Intro with a prose mention (gcloud cannot) and `gcloud pubsub topics list --project=$PROJECT`.

```sh
PROJECT=my-project REGION=europe-west1
NUMBER=$(gcloud projects describe $PROJECT --format='value(projectNumber)')
gcloud projects add-iam-policy-binding $PROJECT --role=roles/pubsub.publisher \\
  --member=serviceAccount:$(gcloud storage service-agent --project=$PROJECT)
for account in a@x b@x; do
  gcloud iam service-accounts describe $account --project=$PROJECT
done
aws s3api get-bucket-notification-configuration --bucket b > current.json
```

Then `aws lambda update-function-code --function-name <FunctionName output> --zip-file fileb://d.zip`.
"""


def _argvs(commands: list[Command]) -> list[str]:
    return [shlex.join(command.argv) for command in commands]


def test_commands_come_from_blocks_substitutions_and_code_spans_in_reading_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs_check, "REPO", tmp_path)
    (tmp_path / "README.md").write_text(README)

    commands, problems = docs_check.markdown_commands(tmp_path / "README.md")

    assert _argvs(commands) == [
        # an inline span before the block that sets $PROJECT: reported, not run
        "gcloud projects describe my-project '--format=value(projectNumber)'",
        "gcloud projects add-iam-policy-binding my-project --role=roles/pubsub.publisher "
        "--member=serviceAccount:placeholder",
        "gcloud storage service-agent --project=my-project",
        "gcloud iam service-accounts describe a@x --project=my-project",
        "aws s3api get-bucket-notification-configuration --bucket b",
        "aws lambda update-function-code --function-name placeholder --zip-file fileb://d.zip",
    ]
    assert len(problems) == 1 and "$PROJECT is used before the guide sets it" in problems[0]


def test_commands_in_messages_are_found_in_backticks_after_parentheses_and_colons() -> None:
    text = (
        "grant it: `gcloud projects add-iam-policy-binding P --role=roles/x` (on Composer 1: "
        "gcloud projects describe P), or check it (aws mwaa list-environments). Our gcloud "
        "account is fine."
    )
    assert list(docs_check.command_spans(text, anywhere=False)) == [
        "gcloud projects add-iam-policy-binding P --role=roles/x",
        "gcloud projects describe P",
        "aws mwaa list-environments",
    ]


def test_a_parenthesis_inside_quotes_does_not_end_a_command() -> None:
    text = "(gcloud composer environments describe E --format='value(name)')."
    assert list(docs_check.command_spans(text, anywhere=False)) == [
        "gcloud composer environments describe E --format='value(name)'"
    ]


def test_dagtriggers_messages_are_read_with_their_fields_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docs_check, "REPO", tmp_path)
    (tmp_path / "fix.py").write_text(
        "def fix(project, ctx):\n"
        "    return (\n"
        '        f"`gcloud projects add-iam-policy-binding {project} --member={ctx.member} "\n'
        '        "--role=roles/composer.user`"\n'
        "    )\n"
    )
    assert _argvs(docs_check.python_commands(tmp_path)) == [
        "gcloud projects add-iam-policy-binding my-project "
        "--member=serviceAccount:dagtrigger@my-project.iam.gserviceaccount.com "
        "--role=roles/composer.user"
    ]


def test_cloud_build_substitutes_its_own_variables_and_refuses_others() -> None:
    values = {"_REGION": "eu", "PROJECT_ID": "p"}
    assert docs_check.substitute("${_REGION} $PROJECT_ID $${HOME} $$x", values) == "eu p ${HOME} $x"
    with pytest.raises(KeyError):
        docs_check.substitute("$HOME", values)


def test_the_cloud_build_deploy_keeps_json_routes_and_picks_the_trigger_per_scenario() -> None:
    _, problems, runs = docs_check.cloud_build_runs(docs_check.REPO / "cloudbuild.yaml")

    assert problems == []
    assert docs_check.cloud_build_problems(runs) == []
    deploys = {
        run["scenario"]: run["argv"] for run in runs if run["argv"][1:3] == ("functions", "deploy")
    }
    assert "--trigger-http" in deploys["Pub/Sub only"]
    assert "--trigger-location=eu" in deploys["Cloud Storage only, in the EU multi-region"]
    routes = docs_check.CLOUD_BUILD_SCENARIOS["inline JSON routes"]["_ROUTES"]
    assert any(f"DAGTRIGGER_ROUTES={routes}##" in arg for arg in deploys["inline JSON routes"])


def test_a_script_that_pastes_json_into_bash_is_caught() -> None:
    runs = [
        {
            "scenario": "inline JSON routes",
            "overrides": {"_ROUTES": '[{"dag_id": "a"}]'},
            "argv": ("gcloud", "functions", "deploy", "f", "--project=p", "--trigger-http",
                     "--set-env-vars=^##^DAGTRIGGER_ROUTES=[{dag_id: a}]"),
        }
    ]  # fmt: skip
    assert "did not arrive intact" in docs_check.cloud_build_problems(runs)[0]


def test_sam_parameter_overrides_must_exist_in_the_template() -> None:
    deploy = Command(
        "README.md:1",
        "sam deploy ...",
        ("sam", "deploy", "--template-file", "infra/aws/template.yaml",
         "--parameter-overrides", "DagId=a", "NoSuchParameter=b", "Architecture=sparc"),
    )  # fmt: skip
    problems = docs_check.sam_parameter_problems([deploy])
    assert len(problems) == 2
    assert "no parameter NoSuchParameter" in problems[0]
    assert "Architecture=sparc is not one of" in problems[1]


def test_every_documented_gcloud_command_names_its_project() -> None:
    commands = [
        Command("a:1", "", ("gcloud", "pubsub", "topics", "create", "t")),
        Command("a:2", "", ("gcloud", "pubsub", "topics", "create", "t", "--project=p")),
        Command("a:3", "", ("gcloud", "pubsub", "topics", "create", "projects/p/topics/t")),
        Command("a:4", "", ("gcloud", "projects", "describe", "p")),
        Command("a:5", "", ("aws", "s3", "ls")),
    ]
    assert [p.split(":")[1] for p in docs_check.project_problems(commands)] == ["1"]
