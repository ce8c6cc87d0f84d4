"""Expand the SAM template into plain CloudFormation, the way `sam deploy` would, so cfn-lint sees the real
resources (cfn-lint on the SAM file itself does not apply the transform, and lets errors through).

Each state machine's ASL file is inlined as its Definition and every CodeUri becomes an S3 placeholder, since the
translator needs neither a build nor an AWS account.

usage: translate.py TEMPLATE.yaml > template.cfn.json
"""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template uses inline statements and SAM policy templates only, never managed policy names."""

    def load(self):
        return {}


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    globals_fn = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = "s3://cpo-lint-placeholder/code.zip"
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and "CodeUri" in props:
            props["CodeUri"] = "s3://cpo-lint-placeholder/code.zip"
        if res.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            with open(os.path.join(base, props.pop("DefinitionUri")), encoding="utf-8") as f:
                props["Definition"] = json.load(f)
    try:
        cfn = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: SAM transform: {cause.message}", file=sys.stderr)
        return 1
    json.dump(cfn, sys.stdout, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
