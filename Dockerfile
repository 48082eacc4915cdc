# raftmq image: nothing but the static binary (no registry is reachable here, and
# nothing else is needed). Build it with `make image`, which compiles bin/raftmq first.
FROM scratch
COPY bin/raftmq /raftmq
VOLUME ["/data"]
EXPOSE 9876 10911 40911
ENTRYPOINT ["/raftmq"]
CMD ["standalone", "-storePathRootDir", "/data"]
