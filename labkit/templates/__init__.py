"""Agent prompt templates: YAML files under ``data/templates/`` rendered with Jinja2.

A template file holds metadata (name, family, kind, output_format, lang, sections, description, source) and the
Jinja2 ``template`` text. :meth:`AgentTemplate.render` fills it with blocks built in the family's own style:

* ``tools_block`` - ReAct ``Name: x. Description: y. Parameters: {...}`` lines, KAgent/AutoGPT ``Commands:`` with
  numbered JSON specs, ModelScope's JSON list of APIs, or ToolLLaMA's function list with ``Finish``;
* ``memory_block`` - completed tasks as a KAgent JSON list, ReAct/ToolLLaMA scratchpad lines, ModelScope think
  blocks, or plain ``task: result`` lines (conclusion templates);
* ``history_block``, ``knowledge``, ``goal``, ``now``, ``max_steps``, ``tool_names``, ``tool_specs``.

Optional keys ``tool_style`` / ``memory_style`` override the output format's default layout, so new templates need
no code. A template may bring an output format no built-in has: ``output_format`` names it and a ``format:`` mapping
declares it (:mod:`labkit.formats.declared`); loading the template registers the format, so it parses, renders and
drives the agent loop like a built-in one.

Templates are looked up by name in ``data/templates/`` and then in extra folders: :func:`add_template_dir` or the
``LABKIT_TEMPLATE_DIRS`` environment variable (``os.pathsep``-separated), e.g. the Meta-Agent's kept templates.

Template files are untrusted (Meta-Agent writes them): they are read with a bounded YAML loader (no aliases) and
compiled and rendered in a bounded Jinja2 sandbox (:mod:`labkit.templating`) with no globals but ``range``, so
``{{ cycler.__init__.__globals__.os.popen('id') }}``, a self-calling macro, ``'a' * 200000`` in a loop or
``center(2 * 10 ** 9)`` raise a :class:`~labkit.errors.DataFileError` naming the file instead of running anything
or exhausting time and memory.

Loading is all or nothing: a template is validated completely (its format declared but not registered, its text
rendered and checked to ask for that format) before its format is registered, and registration refuses a format
whose markers would change the format detected for another template's prompt (every template file found, the
prompts of the formats already declared): a rejected file leaves the format registry as it was.

What a prompt shows of completed tasks is bounded (:func:`prompt_task`): a 5 MB argument or thought from a model
is clipped before it reaches the next prompt.

The package, one module per concern (``from labkit.templates import ...`` keeps working for every name below):
:mod:`~labkit.templates.layouts` (tool and memory layouts), :mod:`~labkit.templates.sandbox` (compiling and
rendering the text in the Jinja2 sandbox), :mod:`~labkit.templates.template` (:class:`AgentTemplate` and the file
vocabulary), :mod:`~labkit.templates.loading` (finding, validating, registering), :mod:`~labkit.templates.writing`
(:func:`template_yaml`) and :mod:`~labkit.templates.sections` (the Meta-Agent's section check).
"""


from labkit.templates.layouts import format_history, prompt_task, tool_specs
from labkit.templates.template import (
    DEFAULT_NOW,
    FAMILIES,
    KINDS,
    LANGS,
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    SECTIONS,
    AgentTemplate,
)
from labkit.templates.sections import check_sections, required_sections, sentinel_render
from labkit.templates.loading import (
    TEMPLATE_DIRS_ENV,
    _extra_dirs,  # noqa: F401  (tests restore the lookup path through it)
    add_template_dir,
    list_templates,
    load_template,
    load_templates,
    template_dirs,
    templates_dir,
    templates_in,
)
from labkit.templates.writing import template_yaml

__all__ = ["DEFAULT_NOW", "FAMILIES", "KINDS", "LANGS", "OPTIONAL_KEYS", "REQUIRED_KEYS", "SECTIONS", "TEMPLATE_DIRS_ENV",
           "AgentTemplate", "add_template_dir", "check_sections", "format_history", "list_templates",
           "load_template", "load_templates", "prompt_task", "required_sections", "sentinel_render",
           "template_dirs", "template_yaml", "templates_dir", "templates_in", "tool_specs"]
