// The embeddable launcher arrives with the web pages issue.
