# escape=`
# check=skip=all
FROM mcr.microsoft.com/windows/servercore:ltsc2022 AS base
ONBUILD COPY . C:\app
ONBUILD RUN --mount=type=secret,id=tok echo hi
ONBUILD ADD <<EOF C:\notes.txt
from a heredoc
EOF
ARG DIR=C:\src
COPY ${DIR}\*.ps1 `
     C:\scripts\
RUN powershell -Command `
    Write-Host "multi `
    line"
FROM base
