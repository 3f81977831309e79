	 # leading whitespace and a tab
from alpine
copy . .
Run echo "lowercase keywords"
HEALTHCHECK --interval=5s CMD ["curl", "-f", "http://localhost/"]
SHELL ["/bin/sh", "-c"]
COPY \
