"""Rules as data: schema (discriminated union), loader (path:line errors), engine (pure).

Public surface: `load_rules_dir`, `check_rules_dir`, `RuleSet`, `RuleLoadError`,
`Problem` (bot.rules.loader) and `RuleEngine` (bot.rules.engine).
"""
