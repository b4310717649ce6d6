-- An asset's status now carries the stage of its running job (probing, transcoding, packaging) and its
-- progress the job's percent; before, rows said 'queued' and the stage lived only in jobs.progress.
-- Carry the stage of jobs running at upgrade time over, so their assets do not list as 'queued'.
UPDATE assets a
   SET status = j.progress->>'stage',
       progress = least(greatest(coalesce((j.progress->>'percent')::real, a.progress), 0), 100),
       facts = coalesce(a.facts, j.progress->'facts')
  FROM jobs j
 WHERE j.id = a.job_id
   AND a.status = 'queued'
   AND j.status = 'running'
   AND j.progress->>'stage' IN ('probing', 'transcoding', 'packaging');
