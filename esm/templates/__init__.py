"""Run the event source mappings of an AWS SAM or CloudFormation template (issue 16).

`load_template(TemplateOptions(...))` builds the same Config that `esm run --config` builds, from
the template's `AWS::Lambda::EventSourceMapping` resources (SAM events translated by AWS's
translator first). The modules: `loader` (YAML with CloudFormation tags), `sam` (the translator),
`intrinsics` (Ref, GetAtt, Sub, If ... offline), `resources` (names, ARNs, --stack, creation),
`functions` (where each function runs), `build` (putting it together), `report` (the table).
"""

from esm.templates.build import LoadedTemplate, Row, TemplateOptions, load_template, parse_parameter_overrides

__all__ = ["LoadedTemplate", "Row", "TemplateOptions", "load_template", "parse_parameter_overrides"]
