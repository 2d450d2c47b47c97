"""The JSON API (`/api/v1/`, bearer API keys) and the public/broker HTTP routes (`/join`, claims, previews)."""
