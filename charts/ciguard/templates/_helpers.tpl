{{/* The name of every object: the release name, with "-ciguard" unless it holds "ciguard". */}}
{{- define "ciguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ciguard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ciguard.labels" -}}
{{ include "ciguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ciguard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "ciguard.tlsSecret" -}}
{{- printf "%s-tls" (include "ciguard.fullname" .) -}}
{{- end -}}

{{/* The Service's DNS names, which the API server checks the serving certificate for. */}}
{{- define "ciguard.dnsNames" -}}
{{- $svc := include "ciguard.fullname" . -}}
{{- $names := list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- concat $names .Values.certificates.extraDnsNames | toJson -}}
{{- end -}}

{{/*
The policies as deployed, as YAML `{policies: [...]}` in name order (the order of
`ciguard webhook-config`'s webhooks): each with the webhook.* defaults written into the
keys it does not set. Fails on a missing or duplicate metadata.name, and on two policies
with the same spec.match (the API server would send both the same pods), with
`ciguard webhook-config`'s messages.
*/}}
{{- define "ciguard.policies" -}}
{{- $byName := dict -}}
{{- $matches := dict -}}
{{- range $i, $given := .Values.policies -}}
{{- $p := deepCopy $given -}}
{{- $name := "" -}}
{{- if kindIs "map" $p.metadata -}}{{- $name = $p.metadata.name | default "" | toString -}}{{- end -}}
{{- if not $name -}}
{{- fail (printf "policies[%d]: metadata.name is missing; each webhook is named after its policy" $i) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" $name) -}}
{{- fail (printf "policies[%d]: metadata.name %q: expected a DNS subdomain (lowercase letters, digits, '-', '.'); it names the policy's webhooks and URL paths" $i $name) -}}
{{- end -}}
{{- if hasKey $byName $name -}}
{{- fail (printf "policies[%d]: two policies are named %q; each is served at /mutate/<name>" $i $name) -}}
{{- end -}}
{{- $spec := dict -}}
{{- if kindIs "map" $p.spec -}}{{- $spec = $p.spec -}}{{- end -}}
{{- if not (hasKey $spec "failurePolicy") -}}
{{- $_ := set $spec "failurePolicy" $.Values.webhook.failurePolicy -}}
{{- end -}}
{{- $match := dict -}}
{{- if kindIs "map" $spec.match -}}{{- $match = $spec.match -}}{{- end -}}
{{- if and (not (hasKey $match "namespaceSelector")) $.Values.webhook.namespaceSelector -}}
{{- $_ := set $match "namespaceSelector" (deepCopy $.Values.webhook.namespaceSelector) -}}
{{- end -}}
{{- if and (not (hasKey $match "objectSelector")) $.Values.webhook.objectSelector -}}
{{- $_ := set $match "objectSelector" (deepCopy $.Values.webhook.objectSelector) -}}
{{- end -}}
{{- if $match -}}{{- $_ := set $spec "match" $match -}}{{- end -}}
{{- $_ := set $p "spec" $spec -}}
{{- $key := toJson $match -}}
{{- if hasKey $matches $key -}}
{{- fail (printf "policies %q and %q have the same spec.match: the API server would send both the same pods; give each its own namespaceSelector or objectSelector" (get $matches $key) $name) -}}
{{- end -}}
{{- $_ := set $matches $key $name -}}
{{- $_ := set $byName $name $p -}}
{{- end -}}
policies:
{{- range $name := keys $byName | sortAlpha }}
  - {{ get $byName $name | toJson }}
{{- end }}
{{- end -}}
