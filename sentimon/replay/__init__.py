"""Applications over the stream core: replaying history and the demo.

Start reading at ``job.TopicReplay`` (`sentimon replay`: a topic's time range through one or two models, each in
its own namespace, then ``report``) and ``demo_run.run_demo`` (`sentimon demo`: a planted trading day through a
real worker). ``run.replay`` is the batch loop under a replay; ``timeline`` generates planted days and
scores alerts against them.
"""
