{{/* The data of the chart's own Secret (credentials.create), base64-encoded. */}}
{{- define "rapport.credentialsData" -}}
{{- $values := .Values -}}
{{- $credentials := $values.credentials -}}
{{- $fullname := include "rapport.fullname" . -}}
{{- $databaseUrl := $credentials.databaseUrl -}}
{{- if and (not $databaseUrl) $values.dev.postgresql.enabled -}}
{{- $databaseUrl = printf "postgres://rapport:%s@%s-dev-postgresql:5432/rapport" $values.dev.postgresql.password $fullname -}}
{{- end -}}
{{- $redisUrl := $credentials.redisUrl -}}
{{- if and (not $redisUrl) $values.dev.redis.enabled -}}
{{- $redisUrl = printf "redis://%s-dev-redis:6379" $fullname -}}
{{- end -}}
{{- with $databaseUrl }}
{{ $values.database.url.key }}: {{ . | b64enc }}
{{- end }}
{{- with $redisUrl }}
{{ $values.redis.url.key }}: {{ . | b64enc }}
{{- end }}
{{- with $credentials.jwtSecret }}
{{ $values.auth.jwtSecret.key }}: {{ . | b64enc }}
{{- end }}
{{- with $credentials.jwks }}
{{ $values.auth.jwks.key }}: {{ . | b64enc }}
{{- end }}
{{- with $credentials.pageTokenKeys }}
{{ $values.auth.pageTokenKeys.key }}: {{ . | b64enc }}
{{- end }}
{{- with $credentials.apiKeys }}
{{ $values.auth.apiKeys.key }}: {{ . | b64enc }}
{{- end }}
{{- if $values.dev.postgresql.enabled }}
dev-postgresql-password: {{ $values.dev.postgresql.password | b64enc }}
{{- end }}
{{- end -}}
