"""Chat adapters: console, Telegram, Discord, behind one small interface."""
