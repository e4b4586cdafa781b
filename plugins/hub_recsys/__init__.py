"""Hub's built-in recommender plugin: matrix factorisation, NCF, SASRec and BERT4Rec."""
