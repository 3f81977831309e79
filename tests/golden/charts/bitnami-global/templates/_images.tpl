{{/*
The image reference, the way Bitnami's common chart writes it: a global
registry comes first, then the image's own registry; a digest replaces the tag.
*/}}
{{- define "shop.image" -}}
{{- $registry := default .imageRoot.registry ((.global).imageRegistry) -}}
{{- $separator := ":" -}}
{{- $termination := .imageRoot.tag | toString -}}
{{- if .imageRoot.digest }}
{{- $separator = "@" -}}
{{- $termination = .imageRoot.digest | toString -}}
{{- end -}}
{{- if $registry }}{{ printf "%s/%s%s%s" $registry .imageRoot.repository $separator $termination }}{{ else }}{{ printf "%s%s%s" .imageRoot.repository $separator $termination }}{{ end -}}
{{- end -}}
