-- Schema of the "voter" example, compatible with VoltDB's examples/voter/ddl.sql:
-- the same tables, columns, partitioning, views and procedures. Load it with
-- voltdb_py's sqlcmd (or compile_ddl, which compiles the batches below and skips the
-- LOAD CLASSES line).

-- sqlcmd: send everything up to END_OF_BATCH to the server as one DDL batch.
file -inlinebatch END_OF_BATCH

-- The contestants one can vote for: number and name.
CREATE TABLE contestants (
    contestant_number  INTEGER      NOT NULL,
    contestant_name    VARCHAR(50)  NOT NULL,
    CONSTRAINT pk_contestants PRIMARY KEY (contestant_number)
);

-- Every accepted vote. No primary key; rows are spread over the partitions by the
-- caller's phone number.
CREATE TABLE votes (
    phone_number       BIGINT       NOT NULL,
    state              VARCHAR(2)   NOT NULL,
    contestant_number  INTEGER      NOT NULL
);
PARTITION TABLE votes ON COLUMN phone_number;

-- Area code -> state, to place a caller on the map (replicated).
CREATE TABLE area_code_state (
    area_code  SMALLINT    NOT NULL,
    state      VARCHAR(2)  NOT NULL,
    CONSTRAINT pk_area_code_state PRIMARY KEY (area_code)
);

-- Votes per phone number: Vote uses it to enforce the per-caller limit.
CREATE VIEW v_votes_by_phone_number (phone_number, num_votes)
AS SELECT phone_number, COUNT(*)
     FROM votes
    GROUP BY phone_number;

-- Votes per contestant and state: the results and the heat map.
CREATE VIEW v_votes_by_contestant_number_state (contestant_number, state, num_votes)
AS SELECT contestant_number, state, COUNT(*)
     FROM votes
    GROUP BY contestant_number, state;

END_OF_BATCH

-- sqlcmd: make the procedure classes known before the procedures are declared
-- (not part of a DDL batch).
LOAD CLASSES voter-procs.jar;

file -inlinebatch END_OF_2ND_BATCH

-- Stored procedures; Vote runs in the partition of the caller's phone number
-- (its first parameter).
CREATE PROCEDURE FROM CLASS voter.Initialize;
CREATE PROCEDURE FROM CLASS voter.Results;
CREATE PROCEDURE PARTITION ON TABLE votes COLUMN phone_number FROM CLASS voter.Vote;
CREATE PROCEDURE FROM CLASS voter.ContestantWinningStates;
CREATE PROCEDURE FROM CLASS voter.GetStateHeatmap;

END_OF_2ND_BATCH
