-- Movie search matches a title or cast word at trigram word similarity 0.5 or more
-- ("avngers" is 0.55 to "avengers: endgame"). The `<%` operator, which the trigram
-- index `movies_search_trgm` serves, compares against this setting; it is set on the
-- database so every session of every process searches alike.
do $$
begin
    execute format('alter database %I set pg_trgm.word_similarity_threshold = 0.5', current_database());
end
$$;
